from facereel.cli import main

main()
