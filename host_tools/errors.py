"""Expected errors: printed as one clear line, never as a traceback."""

# Exit codes: scripts may rely on them. The README's exit-code table lists
# exactly these (tests/host/test_cli_output.py compares the two).
EXIT_OK = 0  # also when the reader of the output went away (`| head`)
EXIT_FAILED = 1  # not confirmed, or the virtual board's firmware raised
EXIT_USAGE = 2  # argparse's code for a bad command line
EXIT_DEVICE = 3  # no device, device busy, link lost
EXIT_DENIED = 4  # wrong role / PIN
EXIT_INVALID = 5  # invalid value, file or record
EXIT_MISMATCH = 6  # firmware ABI / version mismatch
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports a killed command


class CryoError(Exception):
    exit_code = EXIT_FAILED


class DeviceError(CryoError):
    exit_code = EXIT_DEVICE


class AccessDenied(CryoError):
    exit_code = EXIT_DENIED


class InvalidInput(CryoError):
    exit_code = EXIT_INVALID


class Mismatch(CryoError):
    exit_code = EXIT_MISMATCH
