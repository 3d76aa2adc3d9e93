from bot.program import main

main()
