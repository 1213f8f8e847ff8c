"""Console entry point: hands ``sys.argv`` to the Rust side."""

import sys


def main():
    from rsgi._rsgi import main as _main

    argv = list(sys.argv)
    # ``python -m rsgi`` reports argv[0] as this file's path; name it as the script.
    argv[0] = "rsgi"
    sys.exit(_main(argv))


if __name__ == "__main__":
    main()
