"""HomeIQ add-on: a local OpenVINO model stack served over HTTP."""

__version__ = "0.2.0"
# The HTTP contract's version: the major only changes with breaking changes; 1.1 added the
# optional pattern context and priority_reason. Clients check it before sending new fields.
API_VERSION = "1.1"
