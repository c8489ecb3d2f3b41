"""Vendor simulators (TOP router, Tencent IoT Explorer appapi) for dev mode, tests and benchmarks.

They verify signatures and every protocol rule as strictly as the real vendors, record each request
exactly as received, and have knobs for latency, token lifetime, envelopes and scripted answers.
`SandboxState.inject` and the fault kinds of `gateway.sandbox.faults` make them misbehave on purpose
(hangs, resets, 5xx, broken bodies, vendor errors); `/_sandbox/` routes do the same over HTTP.
Only `gateway.signing` is imported from the gateway.
"""

from __future__ import annotations

from gateway.sandbox.app import SANDBOX_STATE, create_sandbox_app, start_sandbox
from gateway.sandbox.faults import ActiveFault, Fault, FaultPlan
from gateway.sandbox.state import CannedResponse, RecordedRequest, SandboxState

__all__ = [
    "SANDBOX_STATE",
    "ActiveFault",
    "CannedResponse",
    "Fault",
    "FaultPlan",
    "RecordedRequest",
    "SandboxState",
    "create_sandbox_app",
    "start_sandbox",
]
