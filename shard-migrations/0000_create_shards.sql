CREATE TABLE `dropped_sessions` (
	`session_id` text PRIMARY KEY NOT NULL,
	`dropped_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `shards` (
	`session_id` text NOT NULL,
	`shard` integer NOT NULL,
	`step` integer NOT NULL,
	`state` blob NOT NULL,
	`updates` blob NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`session_id`, `shard`)
);
