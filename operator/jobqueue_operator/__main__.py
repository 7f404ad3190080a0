"""``python -m jobqueue_operator`` is ``jobqueue-operator``."""

from jobqueue_operator.main import main

if __name__ == "__main__":
    main()
