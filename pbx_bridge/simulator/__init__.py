"""An Asterisk 22 stand-in speaking real AMI over TCP, for tests, the demo and load runs.

It plays the dialplan of the recorded Asterisk (tests/fixtures/ami/README.md):
DIDs 912000001.. in `from-pstn`, agents in `agent-*`, queues `ventas`/`soporte`,
`pstn-out` numbers, `dialer-connect`; every call flow emits the events of the real
traces, per channel and in order (VarSet/Newexten reduced to those that carry
meaning). Typical use::

    async with Simulator("centralita", "secret", speed=40) as sim:
        await sim.start()                       # sim.host, sim.port: a free port
        await sim.inbound(caller="34912345678", extension="1001", answer_after=2, talk=3)
        await sim.inbound(caller="34912345678", did="912000002")  # a README DID
        await sim.queue_call(queue="ventas")
        sim.set_agent_behaviour("1002", "busy")         # also queue agents 2001, 2002, ...
        sim.set_customer_behaviour("34600000001", "noanswer")  # pstn-out numbers
        assert sim.actions[-1].get("Action") == "Originate"  # sim.received: with session
        await sim.drop_clients()                # cut every AMI socket; calls go on
        await sim.run_load(calls_per_second=20, duration_s=10)

`inbound(extension=...)` reaches the agent through a DID of its own (9109 + the
extension on 5 digits), as a trunk would. `run_simulator(host, port, username,
secret, speed, demo_calls_every)` starts one for `centralita simulate`.
"""

from pbx_bridge.simulator.server import Simulator, run_simulator

__all__ = ["Simulator", "run_simulator"]
