from services.symbol_registry.service import main

main()
