"""The operator's controllers: kopf handlers per kind, and the pure decisions they apply.

The decision modules (``schedule``, ``retention``, ``naming``, ``conditions``)
import neither kopf nor kubernetes and never read the clock: handlers read the
object and the time once, call a decision, and apply what it returns.
"""
