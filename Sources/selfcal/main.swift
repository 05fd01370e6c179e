import SelfCal
