from markovfork.cli import main

main()
