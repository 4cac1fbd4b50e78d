"""``python -m fullbody.synthetic``: write a synthetic data set (see :func:`.store.main`)."""

from fullbody.synthetic.store import main

if __name__ == "__main__":
    raise SystemExit(main())
