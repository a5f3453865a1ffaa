"""IEC 60601-1-8 style alarm priorities mapped to buzzer bursts and LEDs."""
