from carousel.cli import main

raise SystemExit(main())
