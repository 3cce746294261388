"""``python -m bids_taskenc`` runs the BIDS-App command line."""

from .cli.run import main

if __name__ == "__main__":
    raise SystemExit(main())
