"""Safety interlock: conditions on raw integer codes; the only grantor of the valve permit.

``cryo.interlock.interlock.Interlock`` is the evaluator (allocation-free),
``cryo.interlock.conditions`` the table of codes/priorities/latching,
``cryo.interlock.limits`` the °C → raw-code conversion (control path).
"""
