from services.archive.service import main

main()
