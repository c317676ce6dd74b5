"""Event time: watermark strategies and generators."""
