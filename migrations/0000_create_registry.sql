CREATE TABLE `alias_history` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`alias` text NOT NULL,
	`version` text NOT NULL,
	`digest` text NOT NULL,
	`moved_at` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `alias_history_name_alias` ON `alias_history` (`name`,`alias`);--> statement-breakpoint
CREATE TABLE `aliases` (
	`name` text NOT NULL,
	`alias` text NOT NULL,
	`version` text NOT NULL,
	`digest` text NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`name`, `alias`),
	FOREIGN KEY (`name`) REFERENCES `optimizers`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `api_keys` (
	`id` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`prefix` text NOT NULL,
	`hash` text NOT NULL,
	`created_at` text NOT NULL,
	`revoked_at` text,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `api_keys_hash` ON `api_keys` (`hash`);--> statement-breakpoint
CREATE TABLE `clients` (
	`id` text PRIMARY KEY NOT NULL,
	`name` text NOT NULL,
	`role` text DEFAULT 'client' NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `optimizers` (
	`name` text PRIMARY KEY NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`created_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `session_shards` (
	`session_id` text NOT NULL,
	`shard` integer NOT NULL,
	`step` integer NOT NULL,
	`state` blob NOT NULL,
	`updates` blob NOT NULL,
	`updated_at` text NOT NULL,
	PRIMARY KEY(`session_id`, `shard`),
	FOREIGN KEY (`session_id`) REFERENCES `sessions`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `sessions` (
	`id` text PRIMARY KEY NOT NULL,
	`client_id` text NOT NULL,
	`optimizer` text NOT NULL,
	`digest` text NOT NULL,
	`hyperparameters` text,
	`num_params` integer NOT NULL,
	`state_dtype` text NOT NULL,
	`state_size` integer NOT NULL,
	`shard_size` integer NOT NULL,
	`created_at` text NOT NULL,
	FOREIGN KEY (`client_id`) REFERENCES `clients`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `sessions_client` ON `sessions` (`client_id`);--> statement-breakpoint
CREATE TABLE `versions` (
	`name` text NOT NULL,
	`version` text NOT NULL,
	`digest` text NOT NULL,
	`weights` blob NOT NULL,
	`size_bytes` integer NOT NULL,
	`architecture` text NOT NULL,
	`card` text,
	`status` text DEFAULT 'active' NOT NULL,
	`deprecated_at` text,
	`created_at` text NOT NULL,
	PRIMARY KEY(`name`, `version`),
	FOREIGN KEY (`name`) REFERENCES `optimizers`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `versions_name_digest` ON `versions` (`name`,`digest`);