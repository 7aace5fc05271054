from services.api.service import main

main()
