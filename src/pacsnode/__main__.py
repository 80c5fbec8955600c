"""``python -m pacsnode``."""

if __name__ == "__main__":
    from pacsnode.cli.entry import main

    main()
