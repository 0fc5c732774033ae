"""The client flow: every operation of the API once or more, in an order a client
would take, each step with the status it must get (its words: myapp/steps.py).
`flask --app myapp export-clients` turns it into the Postman collection and
api.http (myapp/clients.py). Each feature writes its own steps; the order is here.
"""

from myapp.books.flow import CATALOG, LOANS
from myapp.sites.flow import SITES
from myapp.users.flow import ACCOUNTS, SECOND_ACCOUNT, SIGN_OUT

FLOW = [
    *ACCOUNTS,  # accounts and tokens
    *CATALOG,
    *LOANS,
    *SITES,  # sites, their instruments and containers
    *SECOND_ACCOUNT,  # a second account, its sessions, and deleting it
    *SIGN_OUT,  # signing out comes last
]
