"""hubcls.deploy"""
