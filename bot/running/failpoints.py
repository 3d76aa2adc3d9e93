"""Named points where a test can make rollbot die on the spot, to prove crash safety.

`ROLLBOT_FAILPOINTS=swap:after-link,...` makes the process SIGKILL itself when it reaches one
of the named points — no cleanup, no journal entry, exactly like a power cut or an OOM kill.
Unset (always, in production) a failpoint costs one environment lookup.
"""

import os
import signal

ENV_VAR = "ROLLBOT_FAILPOINTS"


def failpoint(name: str) -> None:
    armed = os.environ.get(ENV_VAR)
    if armed and name in armed.split(","):
        os.kill(os.getpid(), signal.SIGKILL)
