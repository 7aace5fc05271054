from services.execution.service import main

main()
