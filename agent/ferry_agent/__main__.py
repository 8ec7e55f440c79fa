from ferry_agent.main import main

main()
