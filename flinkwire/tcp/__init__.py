"""TCP (and UDP) flows: the flow table, who opened each flow, per-direction reassembly."""

from .flows import Flow, FlowTable, Half, Limits

__all__ = ["Flow", "FlowTable", "Half", "Limits"]
