"""``python -m gust``: the same as the ``gust`` console script."""

from gust._entry import main

if __name__ == "__main__":
    main()
