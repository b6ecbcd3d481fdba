"""HomeIQ add-on: a local OpenVINO model stack served over HTTP."""

__version__ = "0.1.0"
