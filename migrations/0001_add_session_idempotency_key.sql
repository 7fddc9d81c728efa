ALTER TABLE `sessions` ADD `idempotency_key` text;--> statement-breakpoint
CREATE UNIQUE INDEX `sessions_client_idempotency_key` ON `sessions` (`client_id`,`idempotency_key`);