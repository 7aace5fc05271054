from services.market_data.service import main

main()
