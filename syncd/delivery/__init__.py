"""How DingTalk's change events reach the queue besides the webhook: Stream and failedResults."""
