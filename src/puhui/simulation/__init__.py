"""``puhui simulate``: synthetic partners drive the real HTTP API through months of business."""
