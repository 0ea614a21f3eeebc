from followupd.cli.main import main

main()
