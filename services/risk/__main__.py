from services.risk.service import main

main()
