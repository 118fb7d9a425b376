"""Settings of the Currents function, read from its environment when first needed (never at import)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

_VARIABLES: Final = {
    "drop_bucket": "DROP_BUCKET",
    "state_table": "CURRENTS_STATE_TABLE",
    "engagement_table": "ENGAGEMENT_PROFILE_TABLE",
    "currents_prefix": "CURRENTS_PREFIX",
    "config_key": "CURRENTS_CONFIG_KEY",
    "outbound_prefix": "OUTBOUND_PREFIX",
    "lytics_url": "LYTICS_URL",
    # The name of the variable naming the secret, not a secret.
    "lytics_token_secret": "LYTICS_TOKEN_SECRET",  # nosec B105
    "deadline_margin_ms": "DEADLINE_MARGIN_MS",
    "idempotency_table": "IDEMPOTENCY_TABLE",
}


class CurrentsSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    drop_bucket: str = Field(min_length=3)
    state_table: str = Field(min_length=3)
    engagement_table: str = Field(min_length=3)
    # Braze's S3 export prefix; notifications for keys elsewhere are ignored.
    currents_prefix: str = "currents/"
    config_key: str = "config/currents.yaml"
    outbound_prefix: str = "outbound/"
    lytics_url: str = "https://api.lytics.io"
    # Secrets Manager secret holding the Lytics API token; needed only when the lytics route is on.
    lytics_token_secret: str = ""
    # Commit and stop this long before the Lambda deadline; the redelivered message resumes.
    deadline_margin_ms: int = Field(default=20_000, ge=1_000)
    # Powertools idempotency table: two deliveries of one object version never route it at the
    # same time (the second waits for the first, then finds it routed). Empty: no such guard.
    idempotency_table: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CurrentsSettings:
        env = os.environ if environ is None else environ
        raw = {name: env[variable] for name, variable in _VARIABLES.items() if env.get(variable)}
        for required in ("drop_bucket", "state_table", "engagement_table"):
            raw.setdefault(required, "")
        try:
            return cls.model_validate(raw)
        except ValidationError as error:
            problems = [
                f"{_VARIABLES.get(str(item['loc'][0]), item['loc'][0])}: {item['msg']}"
                for item in error.errors()
            ]
            raise ValueError("invalid Currents function settings:\n  " + "\n  ".join(problems)) from error
