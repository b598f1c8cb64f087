"""What machine a report was measured on, for the scripts that write docs/."""
import os
import platform


def cpu_name():
    """The CPU model from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def describe():
    """One line: CPU model and visible cores."""
    return f"{cpu_name()}, {os.cpu_count()} cores visible"
