"""`loophost.server`: the runtime over HTTP, wire-compatible with Claude Managed Agents. Thin by design: every
route validates with `loophost.wire`, calls the runtime, and answers with a `loophost.wire` model."""

from ._app import create_app
from ._http_protocol import HttpProtocol
from ._keys import ApiKeys, key_hash, new_key
from ._metrics import metrics_app
from ._settings import ServerSettings

__all__ = ["ApiKeys", "HttpProtocol", "ServerSettings", "create_app", "key_hash", "metrics_app", "new_key"]
