// The wire floor for bench:http (not a test): a plain node:http server that streams each request's
// body back as it arrives, with no parsing and no compute. What a step costs beyond this is l2o's own.
// Prints "listening on http://127.0.0.1:PORT" like the real server.
import http from 'node:http'

const server = http.createServer((req, res) => {
  res.writeHead(200, {
    'content-type': 'application/octet-stream',
    'content-length': req.headers['content-length'],
  })
  req.on('data', (chunk: Buffer) => res.write(chunk))
  req.on('end', () => res.end())
})
server.listen(0, '127.0.0.1', () => {
  const address = server.address()
  if (address && typeof address === 'object') console.log(`listening on http://127.0.0.1:${address.port}`)
})
