CREATE TABLE `version_file_chunks` (
	`name` text NOT NULL,
	`version` text NOT NULL,
	`file` text NOT NULL,
	`chunk` integer NOT NULL,
	`bytes` blob NOT NULL,
	PRIMARY KEY(`name`, `version`, `file`, `chunk`),
	FOREIGN KEY (`name`,`version`,`file`) REFERENCES `version_files`(`name`,`version`,`file`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `version_files` (
	`name` text NOT NULL,
	`version` text NOT NULL,
	`file` text NOT NULL,
	`media_type` text NOT NULL,
	`size_bytes` integer NOT NULL,
	`digest` text NOT NULL,
	`chunks` integer NOT NULL,
	`created_at` text NOT NULL,
	PRIMARY KEY(`name`, `version`, `file`),
	FOREIGN KEY (`name`,`version`) REFERENCES `versions`(`name`,`version`) ON UPDATE no action ON DELETE no action
);
