"""``python -m fullbody.data.synthetic``: write a synthetic data set (see :func:`.store.main`)."""

from fullbody.data.synthetic.store import main

if __name__ == "__main__":
    raise SystemExit(main())
