"""What tests share: corpus files and keys (corpus), a real server (server), an in-process app
(app), HTTP assertions and raw clients (http), metrics (metrics), image checks (images), a real
S3 server (s3), the CLI (cli). Tests import these; nothing imports conftest or a test module."""
