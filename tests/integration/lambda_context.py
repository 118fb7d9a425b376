"""A stand-in for the Lambda context object handlers and runtimes receive in tests."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class LambdaContextStub:
    """What Powertools and the runtimes read from a Lambda context; the deadline is wall-clock time."""

    function_name: str
    deadline: float
    memory_limit_in_mb: int = 1024
    aws_request_id: str = "req-1"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))
