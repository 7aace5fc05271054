from ticktape.cli.main import main

raise SystemExit(main())
