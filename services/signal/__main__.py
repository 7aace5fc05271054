from services.signal.service import main

main()
