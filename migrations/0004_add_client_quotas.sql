CREATE TABLE `quotas` (
	`scope` text PRIMARY KEY NOT NULL,
	`max_sessions` integer,
	`max_session_coordinates` integer,
	`requests_per_minute` integer,
	`failed_auth_per_minute` integer,
	`updated_at` text NOT NULL
);
--> statement-breakpoint
CREATE TABLE `rate_windows` (
	`key` text PRIMARY KEY NOT NULL,
	`window` integer NOT NULL,
	`count` integer NOT NULL
);
