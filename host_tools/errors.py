"""Expected errors: printed as one clear line, never as a traceback."""

# Exit codes (documented in README): scripts may rely on them.
EXIT_USAGE = 2
EXIT_DEVICE = 3  # no device, device busy, link lost
EXIT_DENIED = 4  # wrong role / PIN
EXIT_INVALID = 5  # invalid value, file or record
EXIT_MISMATCH = 6  # firmware ABI / version mismatch


class CryoError(Exception):
    exit_code = 1


class DeviceError(CryoError):
    exit_code = EXIT_DEVICE


class AccessDenied(CryoError):
    exit_code = EXIT_DENIED


class InvalidInput(CryoError):
    exit_code = EXIT_INVALID


class Mismatch(CryoError):
    exit_code = EXIT_MISMATCH
