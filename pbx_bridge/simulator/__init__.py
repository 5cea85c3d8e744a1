"""An Asterisk stand-in speaking real AMI over TCP, for tests, the demo and load runs."""

from pbx_bridge.simulator.server import Simulator, run_simulator

__all__ = ["Simulator", "run_simulator"]
