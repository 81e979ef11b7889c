"""Controllers: scheduler, dispatcher, monitor, finalizer, maintenance.

Each reads as collect (I/O) -> decide (pure, in ``core``) -> apply (I/O, every status write a
CAS), exposes ``run_once()``, and runs under the generic ``ControllerLoop``. Controllers never
import each other; ``app.py`` wires them together.
"""
