/** Canvas plots for the playground: loss curves on a log scale, and paths over a function's contours. */
import type { Window2d } from './tasks'

/** One curve or path and how to draw it. */
export interface Series {
  label: string
  color: string
  values: number[]
}

/** Sizes the canvas's backing store to its CSS size on this screen; returns the 2-D context and size. */
function context(canvas: HTMLCanvasElement): {
  ctx: CanvasRenderingContext2D
  width: number
  height: number
} {
  const ratio = window.devicePixelRatio || 1
  const width = canvas.clientWidth || Number(canvas.getAttribute('width')) || 400
  const height = canvas.clientHeight || Number(canvas.getAttribute('height')) || 260
  if (canvas.width !== Math.round(width * ratio) || canvas.height !== Math.round(height * ratio)) {
    canvas.width = Math.round(width * ratio)
    canvas.height = Math.round(height * ratio)
  }
  const ctx = canvas.getContext('2d')!
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0)
  ctx.clearRect(0, 0, width, height)
  return { ctx, width, height }
}

// Round ticks for a log axis: the powers of ten in range (and 2, 5 between them when few).
function logTicks(min: number, max: number): number[] {
  const ticks: number[] = []
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) {
    for (const m of Math.log10(max / min) < 2 ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e
      if (v >= min && v <= max) ticks.push(v)
    }
  }
  return ticks
}

const tickLabel = (v: number) =>
  v >= 1e4 || v < 1e-3 ? v.toExponential(0) : String(Number(v.toPrecision(3)))

/**
 * Loss curves against the step, y on a log scale (non-positive and non-finite points skipped).
 * The canvas's dataset records what was drawn (`points`: label:count,…) for tests and screen readers.
 */
export function drawLossChart(canvas: HTMLCanvasElement, series: Series[], steps: number): void {
  const { ctx, width, height } = context(canvas)
  const pad = { left: 56, right: 12, top: 12, bottom: 34 }
  const finite = series.flatMap((s) => s.values.filter((v) => Number.isFinite(v) && v > 0))
  canvas.dataset.points = series.map((s) => `${s.label}:${s.values.length}`).join(',')
  ctx.font = '11px system-ui, sans-serif'
  ctx.fillStyle = '#5b6675'
  if (finite.length === 0) {
    ctx.fillText('no steps yet', pad.left + 8, pad.top + 16)
    return
  }
  let min = Math.min(...finite)
  let max = Math.max(...finite)
  if (max / min < 10) {
    const mid = Math.sqrt(min * max)
    min = mid / Math.sqrt(10)
    max = mid * Math.sqrt(10)
  }
  const lastStep = Math.max(steps, 2)
  const x = (i: number) => pad.left + (i / (lastStep - 1)) * (width - pad.left - pad.right)
  const y = (v: number) =>
    pad.top +
    (1 - (Math.log(v) - Math.log(min)) / (Math.log(max) - Math.log(min))) * (height - pad.top - pad.bottom)

  ctx.strokeStyle = '#e3e7ed'
  ctx.lineWidth = 1
  for (const t of logTicks(min, max)) {
    ctx.beginPath()
    ctx.moveTo(pad.left, y(t))
    ctx.lineTo(width - pad.right, y(t))
    ctx.stroke()
    ctx.fillText(tickLabel(t), 4, y(t) + 4)
  }
  ctx.strokeStyle = '#9aa5b4'
  ctx.beginPath()
  ctx.moveTo(pad.left, pad.top)
  ctx.lineTo(pad.left, height - pad.bottom)
  ctx.lineTo(width - pad.right, height - pad.bottom)
  ctx.stroke()
  for (const t of [0, Math.floor((lastStep - 1) / 2), lastStep - 1]) {
    ctx.fillText(String(t + 1), x(t) - 6, height - pad.bottom + 14)
  }
  ctx.fillText('step', width / 2 - 10, height - 4)

  series.forEach((s, k) => {
    ctx.strokeStyle = s.color
    ctx.lineWidth = 2
    ctx.beginPath()
    let pen = false
    s.values.forEach((v, i) => {
      if (!(Number.isFinite(v) && v > 0)) {
        pen = false
        return
      }
      if (pen) ctx.lineTo(x(i), y(v))
      else ctx.moveTo(x(i), y(v))
      pen = true
    })
    ctx.stroke()
    const legendX = width - pad.right - 24 - Math.max(...series.map((q) => ctx.measureText(q.label).width))
    ctx.fillStyle = 'rgba(255, 255, 255, 0.85)'
    ctx.fillRect(legendX - 4, pad.top + k * 16, width - pad.right - legendX + 4, 16)
    ctx.fillStyle = s.color
    ctx.fillRect(legendX, pad.top + 6 + k * 16, 12, 3)
    ctx.fillStyle = '#1f2933'
    ctx.fillText(s.label, legendX + 18, pad.top + 11 + k * 16)
  })
}

/**
 * A function's contours (log-spaced levels, as bands with lines between them) and the optimizers'
 * paths over them, each from a hollow start to a filled end; `minimum` is marked with a star.
 */
export function drawContours(
  canvas: HTMLCanvasElement,
  f: (x: number, y: number) => number,
  window: Window2d,
  paths: { label: string; color: string; points: [number, number][] }[],
  minimum?: [number, number],
): void {
  const { ctx, width, height } = context(canvas)
  canvas.dataset.points = paths.map((p) => `${p.label}:${p.points.length}`).join(',')
  const toX = (v: number) => ((v - window.x[0]) / (window.x[1] - window.x[0])) * width
  const toY = (v: number) => (1 - (v - window.y[0]) / (window.y[1] - window.y[0])) * height

  // Levels on log(f - fmin): the band index per pixel of a coarse grid, scaled up.
  const cell = 2
  const cols = Math.ceil(width / cell)
  const rows = Math.ceil(height / cell)
  const values = new Float64Array(cols * rows)
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const px = window.x[0] + ((c + 0.5) / cols) * (window.x[1] - window.x[0])
      const py = window.y[1] - ((r + 0.5) / rows) * (window.y[1] - window.y[0])
      const v = f(px, py)
      values[r * cols + c] = v
      if (Number.isFinite(v)) {
        lo = Math.min(lo, v)
        hi = Math.max(hi, v)
      }
    }
  }
  const eps = Math.max((hi - lo) * 1e-6, 1e-12)
  const levels = 14
  const band = (v: number) =>
    Math.floor(
      ((Math.log(v - lo + eps) - Math.log(eps)) / (Math.log(hi - lo + eps) - Math.log(eps))) * levels,
    )
  const bands = Int32Array.from(values, band)
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) {
      const b = bands[r * cols + c]
      const t = b / levels
      const edge =
        (c + 1 < cols && bands[r * cols + c + 1] !== b) || (r + 1 < rows && bands[(r + 1) * cols + c] !== b)
      ctx.fillStyle = edge
        ? 'rgba(60, 72, 88, 0.55)'
        : `rgb(${Math.round(236 - 70 * t)}, ${Math.round(242 - 40 * t)}, ${Math.round(250 - 10 * t)})`
      ctx.fillRect(c * cell, r * cell, cell, cell)
    }
  }
  if (minimum !== undefined) {
    // A cross in a ring: drawn, not a glyph, so it needs no font.
    const [mx, my] = [toX(minimum[0]), toY(minimum[1])]
    ctx.strokeStyle = '#1f2933'
    ctx.lineWidth = 2
    ctx.beginPath()
    ctx.arc(mx, my, 7, 0, 2 * Math.PI)
    ctx.moveTo(mx - 11, my)
    ctx.lineTo(mx + 11, my)
    ctx.moveTo(mx, my - 11)
    ctx.lineTo(mx, my + 11)
    ctx.stroke()
  }
  paths.forEach((p, k) => {
    if (p.points.length === 0) return
    ctx.strokeStyle = p.color
    ctx.lineWidth = 2
    ctx.beginPath()
    p.points.forEach(([px, py], i) => {
      if (i === 0) ctx.moveTo(toX(px), toY(py))
      else ctx.lineTo(toX(px), toY(py))
    })
    ctx.stroke()
    const [sx, sy] = p.points[0]
    const [ex, ey] = p.points[p.points.length - 1]
    ctx.beginPath()
    ctx.arc(toX(sx), toY(sy), 5, 0, 2 * Math.PI)
    ctx.stroke()
    ctx.fillStyle = p.color
    ctx.beginPath()
    ctx.arc(toX(ex), toY(ey), 4, 0, 2 * Math.PI)
    ctx.fill()
    ctx.fillRect(10, 10 + k * 16, 12, 3)
    ctx.fillStyle = '#1f2933'
    ctx.font = '11px system-ui, sans-serif'
    ctx.fillText(p.label, 28, 15 + k * 16)
  })
}
