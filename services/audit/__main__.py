from services.audit.service import main

main()
