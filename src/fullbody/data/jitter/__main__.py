"""``python -m fullbody.data.jitter fit|show``: fit or summarise a PGPG jitter file."""

from fullbody.data.jitter.fit import main

if __name__ == "__main__":
    raise SystemExit(main())
