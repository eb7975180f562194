from randla.cli import main

raise SystemExit(main())
