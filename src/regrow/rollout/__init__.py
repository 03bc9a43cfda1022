"""Rollouts: expose a candidate to live traffic step by step, promote it or roll it back.

==================  ========================================================================
:mod:`.assign`      lane assignment by a hash of (rollout id, request key): sticky, monotone
                    as a share grows, exact in expectation, no shared state across replicas
:mod:`.sequential`  always-valid confidence sequences for the candidate-minus-stable loss
:mod:`.evidence`    per-request losses by lane, from the prediction log and feedback labels
:mod:`.logcache`    parsed prediction-log rows per immutable file (LRU), so a step parses only
                    the files written since the last one
:mod:`.validate`    start-time checks: candidates, blend compatibility, slice expressions
:mod:`.decide`      the analysis rule as a pure function, and a replay of simulated rollouts
:mod:`.machine`     the Python API: ``start``, ``step``, ``pause``, ``resume``, ``promote``,
                    ``abort``, ``status``, ``history`` (state kept in
                    :mod:`regrow.catalog.rollouts`, every transition audited)
:mod:`.router`      the router a server uses while a rollout is under way: key -> lane -> version
:mod:`.refresh`     ensemble refresh: Hedge with fixed share, reserved slots, retirement
:mod:`.simulator`   replays a labelled stream through refresh strategies
:mod:`.trials`      replays a labelled stream through rollouts of real models (a bad or a
                    good new member in blend mode, A/A in split mode, a silent lane)
==================  ========================================================================

The package imports nothing on its own: import the module you need
(``from regrow.rollout import machine``).
"""
